"""registry core

Revision ID: 0001
Revises:
Create Date: 2026-11-27 14:55:41.253824
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0001'
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('courts',
    sa.Column('code', sa.String(length=16), nullable=False),
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('province_code', sa.String(length=2), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('code', name=op.f('pk_courts'))
    )
    op.create_table('events',
    sa.Column('seq', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=False, nullable=False),
    sa.Column('occurred_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('type', sa.String(length=40), nullable=False),
    sa.Column('actor', sa.String(length=64), nullable=False),
    sa.Column('court_code', sa.String(length=16), nullable=True),
    sa.Column('listing_id', sa.String(length=32), nullable=True),
    sa.Column('listing_version', sa.Integer(), nullable=True),
    sa.Column('data', sa.JSON(), nullable=False),
    sa.Column('prev_hash', sa.LargeBinary(length=32), nullable=False),
    sa.Column('hash', sa.LargeBinary(length=32), nullable=False),
    sa.PrimaryKeyConstraint('seq', name=op.f('pk_events'))
    )
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_events_listing_id'), ['listing_id'], unique=False)

    op.create_table('log_head',
    sa.Column('id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('last_seq', sa.BigInteger(), nullable=False),
    sa.Column('last_hash', sa.LargeBinary(length=32), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_log_head'))
    )
    op.create_table('api_clients',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('court_code', sa.String(length=16), nullable=True),
    sa.Column('key_hash', sa.LargeBinary(length=32), nullable=False),
    sa.Column('key_prefix', sa.String(length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['court_code'], ['courts.code'], name=op.f('fk_api_clients_court_code_courts')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_api_clients')),
    sa.UniqueConstraint('key_hash', name=op.f('uq_api_clients_key_hash'))
    )
    op.create_table('court_keys',
    sa.Column('key_id', sa.String(length=64), nullable=False),
    sa.Column('court_code', sa.String(length=16), nullable=False),
    sa.Column('public_key', sa.LargeBinary(length=32), nullable=False),
    sa.Column('valid_from', sa.DateTime(timezone=True), nullable=False),
    sa.Column('valid_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('revocation_reason', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['court_code'], ['courts.code'], name=op.f('fk_court_keys_court_code_courts')),
    sa.PrimaryKeyConstraint('key_id', name=op.f('pk_court_keys'))
    )
    with op.batch_alter_table('court_keys', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_court_keys_court_code'), ['court_code'], unique=False)

    op.create_table('listings',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('court_code', sa.String(length=16), nullable=False),
    sa.Column('province_code', sa.String(length=2), nullable=True),
    sa.Column('case_number', sa.String(length=64), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('debtor_kind', sa.String(length=16), nullable=False),
    sa.Column('debtor_name', sa.Text(), nullable=False),
    sa.Column('debtor_id_blind', sa.LargeBinary(length=32), nullable=False),
    sa.Column('debtor_id_cipher', sa.LargeBinary(), nullable=False),
    sa.Column('debtor_id_masked', sa.String(length=32), nullable=False),
    sa.Column('debtor_sex', sa.String(length=1), nullable=True),
    sa.Column('debtor_birth_date', sa.Date(), nullable=True),
    sa.Column('legal_representative', sa.Text(), nullable=True),
    sa.Column('grounds', sa.JSON(), nullable=False),
    sa.Column('term_years', sa.Integer(), nullable=True),
    sa.Column('filed_on', sa.Date(), nullable=False),
    sa.Column('listed_on', sa.Date(), nullable=False),
    sa.Column('expires_on', sa.Date(), nullable=True),
    sa.Column('details', sa.JSON(), nullable=False),
    sa.Column('published_seq', sa.BigInteger(), nullable=False),
    sa.Column('published_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('removed_on', sa.Date(), nullable=True),
    sa.Column('removal_reason', sa.String(length=32), nullable=True),
    sa.ForeignKeyConstraint(['court_code'], ['courts.code'], name=op.f('fk_listings_court_code_courts')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_listings'))
    )
    with op.batch_alter_table('listings', schema=None) as batch_op:
        batch_op.create_index('ix_listings_debtor_id_blind', ['debtor_id_blind'], unique=False)
        batch_op.create_index(
            'ix_listings_active_expires_on',
            ['expires_on'],
            unique=False,
            sqlite_where=sa.text("status = 'active' AND expires_on IS NOT NULL"),
            postgresql_where=sa.text("status = 'active' AND expires_on IS NOT NULL"),
        )

    op.create_table('listing_versions',
    sa.Column('listing_id', sa.String(length=32), nullable=False),
    sa.Column('version', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('court_code', sa.String(length=16), nullable=False),
    sa.Column('submission_id', sa.String(length=128), nullable=False),
    sa.Column('content_sha256', sa.LargeBinary(length=32), nullable=False),
    sa.Column('signed_cipher', sa.LargeBinary(), nullable=False),
    sa.Column('signature', sa.LargeBinary(length=64), nullable=False),
    sa.Column('key_id', sa.String(length=64), nullable=False),
    sa.Column('submitted_by', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['key_id'], ['court_keys.key_id'], name=op.f('fk_listing_versions_key_id_court_keys')),
    sa.ForeignKeyConstraint(['listing_id'], ['listings.id'], name=op.f('fk_listing_versions_listing_id_listings')),
    sa.PrimaryKeyConstraint('listing_id', 'version', name=op.f('pk_listing_versions')),
    sa.UniqueConstraint('submission_id', 'court_code', name=op.f('uq_listing_versions_submission_id_court_code'))
    )
    op.create_table('removals',
    sa.Column('listing_id', sa.String(length=32), nullable=False),
    sa.Column('reason', sa.String(length=32), nullable=False),
    sa.Column('effective_on', sa.Date(), nullable=False),
    sa.Column('basis_document', sa.Text(), nullable=True),
    sa.Column('content_sha256', sa.LargeBinary(length=32), nullable=True),
    sa.Column('signed_cipher', sa.LargeBinary(), nullable=True),
    sa.Column('signature', sa.LargeBinary(length=64), nullable=True),
    sa.Column('key_id', sa.String(length=64), nullable=True),
    sa.Column('removed_by', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['key_id'], ['court_keys.key_id'], name=op.f('fk_removals_key_id_court_keys')),
    sa.ForeignKeyConstraint(['listing_id'], ['listings.id'], name=op.f('fk_removals_listing_id_listings')),
    sa.PrimaryKeyConstraint('listing_id', name=op.f('pk_removals'))
    )
    # The chain's anchor: appenders lock this row (see registry/eventlog/services.py).
    op.bulk_insert(
        sa.table("log_head", sa.column("id", sa.Integer), sa.column("last_seq", sa.BigInteger),
                 sa.column("last_hash", sa.LargeBinary)),
        [{"id": 1, "last_seq": 0, "last_hash": bytes(32)}],
    )


def downgrade() -> None:
    op.drop_table('removals')
    op.drop_table('listing_versions')
    with op.batch_alter_table('listings', schema=None) as batch_op:
        batch_op.drop_index('ix_listings_active_expires_on')
        batch_op.drop_index('ix_listings_debtor_id_blind')

    op.drop_table('listings')
    with op.batch_alter_table('court_keys', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_court_keys_court_code'))

    op.drop_table('court_keys')
    op.drop_table('api_clients')
    op.drop_table('log_head')
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_events_listing_id'))

    op.drop_table('events')
    op.drop_table('courts')
