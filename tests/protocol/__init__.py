"""Tests for the protocol core."""
