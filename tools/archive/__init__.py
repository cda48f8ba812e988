"""The archive stage: approved model revisions kept as OCFL v1.1 objects.

`store` is the OCFL store (ingest, verify, restore, mirror) and `staging` what one ingest gathers; they are
imported by what uses them, not here, so that importing a sibling module does not load ocfl-py.
"""
