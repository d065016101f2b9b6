"""Swarm: sessions as one-replica services of a Docker Swarm that minibinder's machine manages,
images through the lab's registry (`placement = "swarm"`).

`plan` is pure (a session's service spec, what its tasks say, the cluster's seats, registry
names and credentials); `placement.SwarmPlacement` asks the manager's engine and acts, behind
the launcher's `placement.Placement` interface. May import the shared pieces (config, store,
Docker clients, placement, errors); no other domain.
"""
