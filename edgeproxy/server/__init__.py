"""The sockets viewers talk to: the listeners, the HTTP/1.1 protocol on httptools, response
heads as bytes and the writer that sends them."""
