CREATE TABLE profiles (id bigint PRIMARY KEY, bio text, lang text, legacy text);
INSERT INTO profiles (id, lang) VALUES (1, 'en'), (2, 'en'), (3, 'en');
