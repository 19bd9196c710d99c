"""Adapters: the only modules that touch the network, files, the OS or the wall clock.

They hold no protocol or control decision; they feed the cores and carry out what they say.
"""
