"""Storage: the only package that knows SQL. Tables, repositories, the unit of work, migrations."""
