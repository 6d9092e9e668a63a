"""python -m shardlm: the same CLI as the shardlm binary."""
from .cli import main

main()
