"""The workspace's LLM gateway: an OpenAI-compatible endpoint on the pod's loopback, served by
the auth proxy's container, between the user's tools (opencode) and the configured providers.

Why here: the auth proxy's container runs apart from the user's shell (its own uid, its own
environment), so the providers' API keys live there and never in anything the user can read;
and it sees every request, so it can enforce the model allow-list and the limits, count the
tokens, and write the audit events (docs/llm-gateway.md).

* ``config``  — what the gateway allows: providers, their models, limits (a file the operator
  writes, read again when it changes);
* ``limits``  — requests and tokens per minute, per workspace;
* ``usage``   — the token counts in a provider's answer, streamed or not;
* ``metrics`` — Prometheus counters;
* ``gateway`` — the tornado handlers.
"""
