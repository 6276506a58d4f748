# Solution to notebook 06's exercise: is it safe to deploy a release over the executions a query lists?
from tutorial import open_deploys


async def safe_to_deploy(client, query: str, release: str) -> bool:
    """True if every execution the query lists replays on `release`."""
    verdicts = await open_deploys.replay_test(client, query, release)
    return all(verdict == "ok" for verdict in verdicts.values())
