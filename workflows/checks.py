"""System checks for the WORKFLOWS setting."""

from django.core.checks import Error, register

from . import conf


@register()
def check_pools(app_configs, **kwargs):
    errors = []
    pools = conf.pools()
    if conf.get("DEFAULT_POOL") not in pools:
        errors.append(
            Error(f"WORKFLOWS['DEFAULT_POOL'] {conf.get('DEFAULT_POOL')!r} is not in POOLS", id="workflows.E001")
        )
    from django.conf import settings

    for name, cfg in pools.items():
        limit = cfg.get("max_parallel")
        if not isinstance(limit, int) or limit < 1:
            errors.append(Error(f"Pool {name!r}: max_parallel must be a positive integer", id="workflows.E002"))
        if cfg.get("queue", name) not in getattr(settings, "RQ_QUEUES", {}):
            errors.append(
                Error(
                    f"Pool {name!r} uses queue {cfg.get('queue', name)!r}, missing from RQ_QUEUES", id="workflows.E003"
                )
            )
    return errors
