"""Importing an operator's keepalived.conf into a lab (`invoke lab.import`).

keepalived is the parser where it can be (scratch: its config test and its dump of the
resolved configuration); a small tokenizer of the block syntax (source) reads what the
dump lacks; mapping turns both into a lab file and a table of what was and was not brought.
"""
