"""A local stand-in for the Anthropic Messages API, so real Claude Code runs with no network and no key.

Start an :class:`OfflineModel`, give Claude Code :func:`offline_model_env` of its URL, and the model answers
by a small script (see :mod:`iris_offline_model.script`): ``say``, ``slow``, ``chunks``, ``remember``,
``recall``, ``tool`` and ``error`` commands, and an echo of anything else.
"""

from .script import ScriptedReply, ToolCall, decide_reply
from .server import OfflineModel, offline_model_env

__all__ = ["OfflineModel", "ScriptedReply", "ToolCall", "decide_reply", "offline_model_env"]
