"""Helpers: argument validation (`keras_unimixer.utils.validation`, used by every layer) and
parameter / FLOP accounting of built models (`keras_unimixer.utils.accounting`), and the type
aliases of the API's annotations (`keras_unimixer.utils.types`).

Nothing is imported here, so that the layers can import the validation helpers without importing
the accounting, which reads the layers.
"""
