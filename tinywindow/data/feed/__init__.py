"""The gRPC market-data feed: a resumable bar stream (server and client)."""
