-- Up Migration
-- What Teams needs to reach people later, long after the request that introduced them: the
-- tenant's Bot Connector address (serviceUrl), and each user's personal (1:1) conversation with
-- the bot. Kept when the app is installed for someone (installationUpdate, conversationUpdate with
-- membersAdded) and refreshed by every activity they send, so an approver who never wrote to the
-- bot still gets their card (bots/teams/directory.ts).
CREATE TABLE tollgate.teams_tenants (
  tenant      text PRIMARY KEY,
  service_url text NOT NULL,
  updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE tollgate.teams_users (
  tenant          text NOT NULL,
  aad_object_id   text NOT NULL,
  -- The Bot Framework id of the user (29:…), needed to create a conversation with them.
  user_id         text,
  name            text,
  -- Their personal conversation with the bot, once known.
  conversation_id text,
  service_url     text,
  updated_at      timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant, aad_object_id)
);

-- A click arrives naming the message it was made on (Teams: the invoke's replyToId); the card
-- answered to it is that message's, so it is looked up by its platform id.
CREATE INDEX chat_messages_message_id_idx ON tollgate.chat_messages (platform, message_id) WHERE message_id IS NOT NULL;

-- Down Migration
DROP INDEX tollgate.chat_messages_message_id_idx;
DROP TABLE tollgate.teams_users;
DROP TABLE tollgate.teams_tenants;
