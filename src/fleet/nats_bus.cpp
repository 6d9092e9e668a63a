// NatsBus over libnats.
#include "fleet/nats_bus.h"

#include <nats/nats.h>
#include <spdlog/spdlog.h>

#include "core/error.h"

namespace shardlm::fleet {

struct NatsBus::Subscription {
  Handler handler;
  natsSubscription* sub = nullptr;
  ~Subscription() {
    if (sub) natsSubscription_Destroy(sub);
  }
};

namespace {

void on_message(natsConnection*, natsSubscription*, natsMsg* msg, void* closure) {
  auto* handler = static_cast<NatsBus::Handler*>(closure);
  (*handler)(natsMsg_GetSubject(msg),
             std::string_view(natsMsg_GetData(msg), static_cast<size_t>(natsMsg_GetDataLength(msg))));
  natsMsg_Destroy(msg);
}

void check(natsStatus s, const char* what, const std::string& url) {
  if (s != NATS_OK) {
    fail("NATS {} for '{}' failed: {}; check --nats-server / NATS_SERVER (nats://host:4222)", what,
         url, natsStatus_GetText(s));
  }
}

// With a callback, a failed first connect returns at once and retries in the background (without
// one, libnats would block in natsConnection_Connect until it connects).
void on_connected(natsConnection*, void*) {}

std::string with_scheme(const std::string& url) {
  return url.find("://") == std::string::npos ? "nats://" + url : url;
}

}  // namespace

NatsBus::NatsBus(const std::string& url) : url_(with_scheme(url)) {
  natsOptions* opts = nullptr;
  check(natsOptions_Create(&opts), "options", url_);
  std::unique_ptr<natsOptions, void (*)(natsOptions*)> guard(opts, natsOptions_Destroy);
  check(natsOptions_SetURL(opts, url_.c_str()), "URL", url_);
  natsOptions_SetMaxReconnect(opts, -1);  // forever
  natsOptions_SetReconnectWait(opts, 250);
  natsOptions_SetTimeout(opts, 1000);
  natsOptions_SetPingInterval(opts, 1000);  // a silent server is noticed within a few seconds
  natsOptions_SetMaxPingsOut(opts, 2);
  natsOptions_SetRetryOnFailedConnect(opts, true, on_connected, nullptr);
  const natsStatus s = natsConnection_Connect(&conn_, opts);
  if (s == NATS_NOT_YET_CONNECTED) {
    spdlog::warn("NATS at {} is not reachable yet; retrying in the background", url_);
  } else {
    check(s, "connect", url_);
  }
}

NatsBus::~NatsBus() {
  if (conn_) natsConnection_Close(conn_);
  {
    std::lock_guard lock(mutex_);
    subs_.clear();
  }
  if (conn_) natsConnection_Destroy(conn_);
}

void NatsBus::publish(const std::string& subject, std::string_view data) {
  natsConnection_Publish(conn_, subject.c_str(), data.data(), static_cast<int>(data.size()));
}

void NatsBus::subscribe(const std::string& subject, Handler handler) {
  auto sub = std::make_unique<Subscription>();
  sub->handler = std::move(handler);
  check(natsConnection_Subscribe(&sub->sub, conn_, subject.c_str(), on_message, &sub->handler),
        "subscribe", url_);
  std::lock_guard lock(mutex_);
  subs_.push_back(std::move(sub));
}

bool NatsBus::connected() const {
  return natsConnection_Status(conn_) == NATS_CONN_STATUS_CONNECTED;
}

}  // namespace shardlm::fleet
