"""End-to-end tests: real Home Assistant processes and real devices on a virtual network."""
