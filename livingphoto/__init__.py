"""livingphoto: one still photo + a short motion prompt -> a seamless looping clip, in chat."""

__version__ = "0.1.0"
