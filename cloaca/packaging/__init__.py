"""Package format and builder: manifest model, targets, discovery, lock/vendor, archives."""
