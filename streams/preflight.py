"""``imgstream worker --check``: can a worker start here? Without connecting anywhere.

Loads the settings (and, in production, lists every setting an operator must still
give), the profile and the model catalog, finds the segmentation network, and imports
the app with every agent, the way a worker starts. Deployments run it as a smoke test
of an image or an environment before the first worker does.
"""

from __future__ import annotations

from imaging.errors import ConfigurationError
from streams.settings import Settings


def worker_problems(settings: Settings) -> list[str]:
    """Everything that would stop a worker, one line each (empty: it can start)."""
    problems = list(settings.production_problems())
    try:
        from imaging.planning import check_routing_models
        from profiles import load_profile
        from services.model_catalog import load_catalog
        from streams.budget import budget_zone

        profile = load_profile(settings.profile, settings.profiles_dir)
        check_routing_models(profile, load_catalog())
        budget_zone(settings.budget_timezone)
    except ConfigurationError as exc:
        problems.append(str(exc))
    from imaging.segmentation import float_model_path, int8_model_path

    try:
        float_model_path()
    except RuntimeError as exc:
        problems.append(str(exc))
    if not int8_model_path().is_file():
        problems.append(f"the segmentation model is missing at {int8_model_path()}: run "
                        "'python -m imaging.model_build'")
    return problems


def check_worker(settings: Settings) -> int:
    """Print what a worker would run with, or what stops it; the exit status."""
    problems = worker_problems(settings)
    if problems:
        print(f"imgstream worker --check ({settings.env}): cannot start:")
        for problem in problems:
            print(f"  - {problem}")
        return 1
    from streams.app import create_worker

    try:
        worker = create_worker(settings)  # builds the app and registers every agent
    except ConfigurationError as exc:
        print(f"imgstream worker --check ({settings.env}): cannot start:\n  - {exc}")
        return 1
    agents = sorted(worker.app.agents)
    print(f"imgstream worker --check ({settings.env}): ok: profile "
          f"{worker.profile.name} {worker.profile.version}, "
          f"{len(agents)} agents ({', '.join(a.rsplit('.', 1)[-1] for a in agents)}), "
          f"broker {settings.kafka_bootstrap}, database {settings.db_host}:{settings.db_port}")
    return 0
