"""Typed errors raised at the engine's boundaries.

Every message is one actionable sentence that names the thing at fault (a file, a tensor, a field),
so the command line and the app can show it as it is, without a traceback.
"""


class SurtitleError(Exception):
    """Base class of every error the engine raises on purpose."""


class ConfigError(SurtitleError, ValueError):
    """A config.json (or a config passed in code) is missing fields or contradicts itself."""


class CheckpointError(SurtitleError):
    """A checkpoint cannot be found, read, or does not match its config."""


class AudioError(SurtitleError, ValueError):
    """Audio given to the engine is unusable (wrong rate, shape, NaN, empty...)."""


class StreamError(SurtitleError, RuntimeError):
    """A stream was driven out of order (a slot that is not open, no free slot left...)."""


class DeviceError(SurtitleError, ValueError):
    """The device asked for (cuda:N, mps...) does not exist here or cannot run the model."""
