"""Amazon Redshift (``engine``: ``redshift``)."""
