"""Asyncio SIP stack: messages, SDP, transports, transactions, dialogs, registrar."""
