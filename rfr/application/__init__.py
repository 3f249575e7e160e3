"""Use cases and the ports (typing.Protocol) the adapters implement."""
