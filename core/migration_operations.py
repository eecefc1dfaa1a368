"""Migration operations that keep a running site serving while a big table gets an index."""

from __future__ import annotations

from django.contrib.postgres.indexes import PostgresIndex
from django.contrib.postgres.operations import AddIndexConcurrently


class AddIndexWithoutLocking(AddIndexConcurrently):
    """CREATE INDEX CONCURRENTLY on PostgreSQL, where writes to the table go on meanwhile; a
    plain index elsewhere (the development SQLite file), and none of PostgreSQL's own kinds
    (GIN), which only PostgreSQL has. The migration must be `atomic = False`."""

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            super().database_forwards(app_label, schema_editor, from_state, to_state)
            return
        model = to_state.apps.get_model(app_label, self.model_name)
        if not isinstance(self.index, PostgresIndex) and self.allow_migrate_model(
            schema_editor.connection.alias, model
        ):
            schema_editor.add_index(model, self.index)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            super().database_backwards(app_label, schema_editor, from_state, to_state)
            return
        model = from_state.apps.get_model(app_label, self.model_name)
        if not isinstance(self.index, PostgresIndex) and self.allow_migrate_model(
            schema_editor.connection.alias, model
        ):
            schema_editor.remove_index(model, self.index)
