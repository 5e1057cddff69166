"""Tests for the reference device and the vendor tool."""
