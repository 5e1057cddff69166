"""The recovery key in the options (§14.8): make one (a rotation adds it to every device), remove it (a
rotation takes it off), restore devices with it (an older backup, a lost key), and finish a restore."""

from __future__ import annotations

from typing import Any

from homeassistant.config_entries import ConfigFlowResult

from .options_base import CONFIRM_SCHEMA, OptionsSteps, confirm_errors
from .protocol.keys import KeyType, PrivateKey, fingerprint, format_fingerprint
from .recovery_steps import (
    CONF_RECOVERY_KEY,
    RECOVERY_SCHEMA,
    RecoverySteps,
    async_raise_restoring,
    read_recovery,
    step_errors,
)
from .registrar.keys import RecoveryKey
from .registrar.ports import StepError
from .registrar.restore import finish_restore, start_restore
from .registrar.rotation import RotationProgress, rotate_home_key, rotation_progress


class RecoveryOptions(OptionsSteps, RecoverySteps):
    """Options steps for the recovery key."""

    def _recovery_key_type(self) -> KeyType:
        return self._registrar.keys.current.key_type

    async def async_step_recovery_key(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Make a recovery key, or (when the home has one) remove it."""
        recovery = self._registrar.keys.recovery
        if recovery is None:
            return await self.async_step_new_recovery_key()
        if user_input is not None:
            if errors := confirm_errors(user_input):
                return self._remove_form(recovery, errors)
            try:
                progress = await rotate_home_key(self._registrar, destroy_old=False, recovery=(None,))
            except StepError as err:
                if err.reason != "rotation_unfinished":  # signed: finished at the next start
                    return self._remove_form(recovery, {"base": err.reason})
                progress = rotation_progress(self._registrar)
            async_raise_restoring(self.hass, self._registrar.keys)  # a restore in progress ends with it
            return self._finished("recovery_key_removed", self._progress(progress))
        return self._remove_form(recovery, {})

    def _remove_form(self, recovery: RecoveryKey, errors: dict[str, str]) -> ConfigFlowResult:
        return self.async_show_form(
            step_id="recovery_key",
            data_schema=CONFIRM_SCHEMA,
            description_placeholders={"fingerprint": format_fingerprint(recovery.fingerprint)},
            errors=errors,
        )

    def _progress(self, progress: RotationProgress) -> dict[str, str]:
        return {"moved": str(progress.moved), "pending": str(progress.pending)}

    async def _recovery_kept(self, recovery: RecoveryKey) -> ConfigFlowResult:
        """The owner kept the new recovery key: a rotation names it as a co-owner of every device."""
        try:
            progress = await rotate_home_key(self._registrar, destroy_old=False, recovery=(recovery,))
        except StepError as err:
            if err.reason != "rotation_unfinished":  # nothing signed, nothing kept
                return self._finished("recovery_key_not_made", {"reason": err.reason})
            progress = rotation_progress(self._registrar)  # signed: finished at the next start
        return self._finished(
            "recovery_key_made",
            {**self._progress(progress), "fingerprint": format_fingerprint(recovery.fingerprint)},
        )

    async def async_step_restore_from_recovery_key(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Devices a lost home key owns (an older backup, a destroyed key) are moved to this home key with
        the recovery key, held until the owner finishes the restore."""
        errors: dict[str, str] = {}
        if user_input is not None:
            key, errors = read_recovery(user_input[CONF_RECOVERY_KEY])
            if key is not None and not (errors := await self._hold(key)):
                digest = format_fingerprint(fingerprint(key.public_key()))
                return self._finished("restoring", {"fingerprint": digest})
        return self.async_show_form(
            step_id="restore_from_recovery_key", data_schema=RECOVERY_SCHEMA, errors=errors
        )

    async def _hold(self, key: PrivateKey) -> dict[str, str]:
        """Hold the recovery key on disk; devices it may move are tried (discovery hands on what it
        knows of again)."""
        try:
            await start_restore(self._registrar, key)
        except StepError as err:
            return step_errors(err)
        async_raise_restoring(self.hass, self._registrar.keys)
        self._entry.runtime_data.browser.async_replay()
        return {}

    async def async_step_finish_restore(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Forget the recovery key's private part: devices that show up later are no longer moved."""
        keys = self._registrar.keys
        if keys.recovery is None or keys.recovery.key is None:
            return self.async_abort(reason="not_restoring")
        errors: dict[str, str] = {}
        if user_input is not None and not (errors := confirm_errors(user_input)):
            try:
                kept = await finish_restore(self._registrar)
            except StepError as err:
                errors = {"base": err.reason}
            else:
                async_raise_restoring(self.hass, keys)
                return self._finished("restore_finished" if kept else "restore_finished_unused")
        return self.async_show_form(step_id="finish_restore", data_schema=CONFIRM_SCHEMA, errors=errors)
