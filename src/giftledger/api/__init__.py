"""The GraphQL transport tills call: schema (SDL), resolvers, error shape, HTTP endpoint."""
