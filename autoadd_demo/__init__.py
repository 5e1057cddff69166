"""The AutoAdd demo: a real Home Assistant, real devices announcing themselves over real mDNS."""
