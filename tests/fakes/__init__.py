"""Local fake APIs that the real client libraries talk to in the collector tests."""
