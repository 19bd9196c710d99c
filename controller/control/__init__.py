"""Pure control core: numpy over struct-of-arrays fleet state.

No I/O, no asyncio, no clock reads in this package: time comes in as `now_s` arguments.
"""
