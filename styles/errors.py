"""The style library's errors: each is the user's to act on and reads as one clear line."""

from __future__ import annotations


class StyleError(Exception):
    """A problem with a style the user can act on; the message is one clear line."""


class StyleNotFound(StyleError):
    """No style of that name."""


class StyleExists(StyleError):
    """A style of that name already exists."""


class DocumentNotFound(StyleError):
    """No document in the style matches the path or SHA given."""


class InvalidStyleFile(StyleError):
    """A style file to import is damaged or not a style file."""


class LibraryReadOnly(StyleError):
    """The library could only be opened read-only, and a change was asked for."""


class TokenizerMismatch(StyleError, ValueError):
    """The style was built with another tokenizer than the one it is used with.

    Also a ValueError, so code that treats bad arguments as the user's catches it too.
    """


def check_tokenizer(style: str, style_fingerprint: str, fingerprint: str, *, model: str | None = None) -> None:
    """Raise TokenizerMismatch unless a style built with `style_fingerprint` fits a tokenizer whose
    fingerprint is `fingerprint` (the one check, the one message, wherever a style meets a model)."""
    if style_fingerprint == fingerprint:
        return
    target = f"model {model}" if model else "this tokenizer"
    raise TokenizerMismatch(
        f"style '{style}' was built with another tokenizer (fingerprint {style_fingerprint}) than {target} "
        f"({fingerprint}); to use it here, run `stylesteer styles rebuild {style} --model {model or 'MODEL'}`"
    )
