"""SIP user agent / B2BUA toolkit and media engine.

A library driven through a narrow adapter (effects in, observations out). It never
imports ``rwi``: the call-control service sits on top of it, not inside it.
"""
