"""What runs experiments, above the library: training runs and their folders (`training`,
`artifacts`), the command line (`cli`), benchmark protocols (`protocols`), scaling ladders
(`scaling`) and Keras Tuner searches (`tuning`).

Nothing is imported here: `python -m keras_unimixer` loads only the subcommand it runs.
"""
