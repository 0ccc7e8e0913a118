"""A Hydra sweeper on Optuna's ask/tell API (`hydra/sweeper=optuna_study`): one study, in memory
or in a storage several worker processes share, with a trial budget counted in the storage and
per-epoch pruning. Hydra scans `config` and `sweeper`; the `_` modules hold the Optuna side and
are imported only when a search runs."""
