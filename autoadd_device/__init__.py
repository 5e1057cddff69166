"""The AutoAdd reference device: a real AutoAdd device on the network, built on the protocol core."""
