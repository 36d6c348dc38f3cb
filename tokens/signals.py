"""Drop a token's cached auth entry whenever it or its fallbacks change."""

from django.db.models.signals import post_delete, post_save

from .keys import forget_cached_tokens
from .models import Token, TokenFallback


def _forget_token(sender, instance, **kwargs):
    token = instance if isinstance(instance, Token) else Token.objects.filter(pk=instance.token_id).first()
    if token is not None:
        forget_cached_tokens(token.key_hash)


for _model in (Token, TokenFallback):
    post_save.connect(_forget_token, sender=_model, dispatch_uid=f"token-save-{_model.__name__}")
    post_delete.connect(_forget_token, sender=_model, dispatch_uid=f"token-delete-{_model.__name__}")
