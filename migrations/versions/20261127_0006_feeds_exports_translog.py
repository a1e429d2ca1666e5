"""feeds (publications), transparency log (leaves, salts, nodes, checkpoints)

Revision ID: 0006
Revises: 0002
Create Date: 2026-11-27 17:48:49.936190
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0006'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('publications',
    sa.Column('seq', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=False, nullable=False),
    sa.Column('listing_id', sa.String(length=32), nullable=False),
    sa.Column('event', sa.String(length=16), nullable=False),
    sa.Column('occurred_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('province_code', sa.String(length=2), nullable=True),
    sa.Column('court_code', sa.String(length=16), nullable=False),
    sa.Column('debtor_kind', sa.String(length=16), nullable=False),
    sa.Column('reason', sa.String(length=32), nullable=True),
    sa.Column('effective_on', sa.Date(), nullable=True),
    sa.PrimaryKeyConstraint('seq', name=op.f('pk_publications')),
    sa.UniqueConstraint('listing_id', name=op.f('uq_publications_listing_id'))
    )
    with op.batch_alter_table('publications', schema=None) as batch_op:
        batch_op.create_index('ix_publications_court_code_seq', ['court_code', 'seq'], unique=False)
        batch_op.create_index('ix_publications_debtor_kind_seq', ['debtor_kind', 'seq'], unique=False)
        batch_op.create_index('ix_publications_province_code_seq', ['province_code', 'seq'], unique=False)

    op.create_table('translog_checkpoints',
    sa.Column('tree_size', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=False, nullable=False),
    sa.Column('root_hash', sa.LargeBinary(length=32), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('key_id', sa.String(length=32), nullable=False),
    sa.Column('signature', sa.LargeBinary(length=64), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('tree_size', name=op.f('pk_translog_checkpoints'))
    )
    op.create_table('translog_leaves',
    sa.Column('leaf_index', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=False, nullable=False),
    sa.Column('seq', sa.BigInteger(), nullable=False),
    sa.Column('commitment', sa.LargeBinary(length=32), nullable=False),
    sa.Column('leaf_hash', sa.LargeBinary(length=32), nullable=False),
    sa.PrimaryKeyConstraint('leaf_index', name=op.f('pk_translog_leaves')),
    sa.UniqueConstraint('seq', name=op.f('uq_translog_leaves_seq'))
    )
    op.create_table('translog_nodes',
    sa.Column('level', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('node_index', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('hash', sa.LargeBinary(length=32), nullable=False),
    sa.PrimaryKeyConstraint('level', 'node_index', name=op.f('pk_translog_nodes'))
    )
    op.create_table('translog_salts',
    sa.Column('seq', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=False, nullable=False),
    sa.Column('salt', sa.LargeBinary(length=32), nullable=False),
    sa.PrimaryKeyConstraint('seq', name=op.f('pk_translog_salts'))
    )


def downgrade() -> None:
    op.drop_table('translog_salts')
    op.drop_table('translog_nodes')
    op.drop_table('translog_leaves')
    op.drop_table('translog_checkpoints')
    with op.batch_alter_table('publications', schema=None) as batch_op:
        batch_op.drop_index('ix_publications_province_code_seq')
        batch_op.drop_index('ix_publications_debtor_kind_seq')
        batch_op.drop_index('ix_publications_court_code_seq')

    op.drop_table('publications')
