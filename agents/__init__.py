"""The LangGraph graph that turns ledger events into reviewed preservation proposals.

One module per role (coordinator, documenter, advocate, critic, review gate,
executor), wired in `agents/graph.py`. Arrives with the agents issue; nothing
here acts yet.
"""
