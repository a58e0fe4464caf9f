//! Vendors' public status pages: parsers per format and the poller.
