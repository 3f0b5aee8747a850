"""Stand-ins for things DevPlane talks to but does not own, for tests and the local demo."""
