"""The reference consumer for assistants: ``Consumer`` with a ``Handler`` returning ``HandlerResult``."""

from client.consumer import Consumer, Handler, HandlerResult

__all__ = ["Consumer", "Handler", "HandlerResult"]
