"""Ways out: each transport delivers Events the Hub hands it to its own listeners."""
