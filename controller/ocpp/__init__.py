"""Sans-I/O OCPP-J core: text frames in, events and frames out.

No asyncio, no sockets, no clock reads in this package: time comes in as arguments.
"""
