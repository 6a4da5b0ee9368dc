"""A trainer's checkpoint: everything :class:`~seqgan_music.trainer.Trainer` saves after each unit
(weights, optimizers, the best model, random streams) and restores to resume a run exactly."""

from __future__ import annotations

from typing import Any

import torch

from seqgan_music.checkpoint import load_checkpoint, run_state
from seqgan_music.errors import UserError


def saved_state(trainer) -> dict[str, Any]:
    """The checkpoint dict of ``trainer`` now (:func:`checkpoint.run_state`)."""
    return run_state(
        trainer.cfg, trainer.tokenizer, progress=trainer.units_done, units=len(trainer.units),
        generator=trainer.G.state_dict(), discriminator=trainer.D.state_dict(), rollout=trainer.rollout.state_dict(),
        reference=trainer.reference.state_dict(), best_generator=trainer.best.generator, selection=trainer.best.state,
        g_opt=trainer.mle.opt.state_dict(), pg_opt=trainer.pg.opt.state_dict(), d_opt=trainer.d_phase.opt.state_dict(),
        nonfinite=trainer.step.nonfinite, structure=trainer.structure and trainer.structure.state(),
        form_real=trainer.form_real, d_augment=trainer.d_phase.augment and trainer.d_phase.augment.p,
        d_judge=None if trainer.d_phase.judge is trainer.D else trainer.d_phase.judge.state_dict(),
        rng={"torch": torch.get_rng_state(), "trainer": trainer.rng.get_state()},
    )


def restore(trainer, path: str) -> None:
    """Load the checkpoint at ``path`` into ``trainer`` (the same run config and tokenizer
    required) and set its progress; a UserError names what does not fit."""
    loaded = load_checkpoint(path, trainer.device)
    st = loaded.state
    if loaded.config != trainer.cfg:
        raise UserError(f"{path}: checkpoint was trained with another configuration; drop --set/--preset changes or use a new --out")
    if (loaded.tokenizer and loaded.tokenizer.meaning()) != (trainer.tokenizer and trainer.tokenizer.meaning()):
        raise UserError(f"{path}: checkpoint was trained on a dataset with another tokenizer; resume it with that dataset")
    trainer.G.load_state_dict(loaded.generator.state_dict())
    trainer.D.load_state_dict(loaded.discriminator.state_dict())
    try:
        trainer.rollout.load_state_dict(st["rollout"])
        trainer.mle.opt.load_state_dict(st["g_opt"])
        if st["pg_opt"] is not None:
            trainer.pg.opt.load_state_dict(st["pg_opt"])
        trainer.d_phase.opt.load_state_dict(st["d_opt"])
        trainer.reference.load_state_dict(st["reference"])
        trainer.best.generator = st["best_generator"]
        trainer.best.state = dict(st["selection"])
        if trainer.structure is not None:
            trainer.structure.load_state(st["structure"] or {})
        torch.set_rng_state(st["rng"]["torch"])
        trainer.rng.set_state(st["rng"]["trainer"])
        trainer.step.nonfinite = int(st["nonfinite"])
        if trainer.d_phase.augment is not None:  # written by every run that moves D's windows
            trainer.d_phase.augment.p = float(st["d_augment"])
        if trainer.d_phase.judge is not trainer.D:  # written by every run that averages D's weights
            trainer.d_phase.judge.load_state_dict(st["d_judge"])
    except (KeyError, RuntimeError, ValueError, TypeError) as exc:
        raise UserError(f"{path}: incomplete checkpoint ({exc})") from None
    trainer.units_done = int(st["progress"])
