"""MySQL, Aurora MySQL and MariaDB (``engine``: ``mysql``, ``aurora-mysql``, ``mariadb``)."""
