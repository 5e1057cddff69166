"""Tests for AutoAdd."""
