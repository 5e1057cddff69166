"""autoadd-vendor: the manufacturer's command line (root CA, IDevIDs, invoices, inspection)."""
