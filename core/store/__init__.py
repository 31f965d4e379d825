"""The typed data layer: one function per named query (sql/*.sql), taking a frozen dataclass of
the query's named parameters, so a column added to a query is a field the type checker follows.

Growing one table at a time (issue 18): the queries not moved here yet are still called through
``core.queries.queries`` with ``$n`` parameters in order.
"""
