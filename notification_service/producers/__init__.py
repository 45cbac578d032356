"""Ways in: HTTP routes that turn a request into one Event and hand it to the Hub."""
