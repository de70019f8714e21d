"""The database engines: MariaDB, PostgreSQL and MongoDB, one module each."""
