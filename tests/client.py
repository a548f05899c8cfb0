"""A persona: one signed-in user driving the server through gql over HTTP."""

from __future__ import annotations

from typing import Any

from gql import Client
from gql.graphql_request import GraphQLRequest
from gql.transport.exceptions import TransportQueryError
from gql.transport.httpx import HTTPXTransport

LOGIN = """
mutation Login($email: String!, $password: String!) {
  login(email: $email, password: $password) { token viewer { id email } }
}
"""


class Persona:
    def __init__(self, url: str, token: str | None, headers: dict[str, str] | None = None) -> None:
        self.url = url
        self.token = token
        self.headers = dict(headers or {})
        if token:
            self.headers["Authorization"] = f"Bearer {token}"
        self.client = Client(transport=HTTPXTransport(url=url, headers=self.headers, timeout=60))

    def with_headers(self, **headers: str) -> Persona:
        persona = Persona(self.url, None, {**self.headers, **headers})
        persona.token = self.token
        return persona

    def execute(self, document: str, **variables: Any) -> dict[str, Any]:
        return self.client.execute(GraphQLRequest(document, variable_values=variables or None))

    def error(self, document: str, **variables: Any) -> dict[str, Any]:
        """The first GraphQL error of a request expected to fail."""
        try:
            data = self.execute(document, **variables)
        except TransportQueryError as exc:
            assert exc.errors, exc
            return exc.errors[0]
        raise AssertionError(f"expected an error, got {data}")


def login(url: str, email: str, password: str = "demo") -> Persona:
    data = Persona(url, None).execute(LOGIN, email=email, password=password)
    return Persona(url, data["login"]["token"])
