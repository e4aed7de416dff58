# pragma version ~=0.4.3
"""
@title verimesh Arena (a quality competition for one task family)
@custom:contract-name Arena
@license Apache-2.0
@notice Providers compete with their own models for one task family under a published
        evaluation spec; staked validators score them every epoch with commit-reveal; anyone
        funds the per-epoch reward pool. The epoch's payouts are computed off chain by the
        deterministic integer consensus `verimesh.market.consensus.settle_epoch` from the
        revealed scores, posted here with a bond, and paid after a challenge window in which
        anyone can dispute them with an equal bond; the arbiter resolves a dispute by
        recomputing the consensus, and the loser's bond goes to the winner.
@custom:security
        - Conservation: the token balance of the arena always equals
          sum(provider stakes) + sum(validator stakes) + sum(unsettled pools)
          + sum(posted bonds) + sum(claimable). Every path that books one of these moves the
          same amount between them or pulls/pushes exactly that amount. A settlement is
          accepted only if its payouts plus the carry equal the epoch's pool, exactly.
        - Commit-reveal: a reveal must match keccak256(abi_encode(epoch, validator, scores,
          salt)) committed in the commit phase, so nobody can copy the current epoch's
          scores of another validator; the commitment binds the validator's address, so a
          commitment cannot be replayed by another validator either.
        - Challenges cannot be answered adaptively: providers commit the root of their answers
          to the epoch's whole public pool (`commit_answers`) in the answer window (first half
          of the commit phase); the challenge seed that picks what is scored is fixed by the
          first `reveal_seed` after that window from the previous block's hash and prevrandao,
          which did not exist when the last answer could still be committed.
        - Pruning: when a newcomer registers into a full arena, the lowest-ranked provider
          whose immunity has expired is removed and its stake becomes claimable; if every
          provider is immune the registration reverts. The scan is bounded by
          `_MAX_PROVIDERS`.
        - Every list is bounded (`_MAX_PROVIDERS`, `_MAX_VALIDATORS`); payouts are credited
          and withdrawn with `claim` (pull), so one failing recipient cannot block others.
        - Every change of the provider lineup and of the validator set is an event that names
          its epoch, so the inputs of an epoch's consensus (lineup and stakes at the end of
          the epoch) are reconstructed from the chain alone, identically by everyone.
        - Checks, then effects, then the token call; the token is the trusted Token.
"""

from ethereum.ercs import IERC20

# Most provider slots of any arena (score vectors and payout lists are this long at most).
_MAX_PROVIDERS: constant(uint256) = 16
# Most validators of any arena.
_MAX_VALIDATORS: constant(uint256) = 16
# Standing = 3/10 of the new rank + 7/10 of the old: pruning follows sustained rank, so one
# noisy epoch (or a minority's small pull inside the honest band) rarely decides it.
_STANDING_NEW: constant(uint256) = 3
_STANDING_DEN: constant(uint256) = 10

STATUS_NONE: public(constant(uint8)) = 0
STATUS_POSTED: public(constant(uint8)) = 1
STATUS_CHALLENGED: public(constant(uint8)) = 2
STATUS_FINAL: public(constant(uint8)) = 3


struct Settlement:
    status: uint8
    poster: address
    challenger: address
    digest: bytes32  # keccak256 of the posted payouts (see `settlement_digest`)
    posted_at: uint256


event ProviderRegistered:
    provider: indexed(address)
    slot: uint256
    stake: uint256
    epoch: uint256


event ProviderPruned:
    provider: indexed(address)
    slot: uint256
    newcomer: indexed(address)
    epoch: uint256


event ProviderLeft:
    provider: indexed(address)
    slot: uint256
    epoch: uint256


event ValidatorRegistered:
    validator: indexed(address)
    stake: uint256
    epoch: uint256


event ValidatorLeft:
    validator: indexed(address)
    stake: uint256
    epoch: uint256


event Funded:
    epoch: indexed(uint256)
    funder: indexed(address)
    amount: uint256


event ScoresCommitted:
    epoch: indexed(uint256)
    validator: indexed(address)
    commitment: bytes32


event ScoresRevealed:
    epoch: indexed(uint256)
    validator: indexed(address)
    scores: DynArray[uint256, _MAX_PROVIDERS]


event AnswersCommitted:
    epoch: indexed(uint256)
    provider: indexed(address)
    slot: uint256
    model_root: bytes32
    answers_root: bytes32


event SeedRevealed:
    epoch: indexed(uint256)
    seed: bytes32


event SettlementPosted:
    epoch: indexed(uint256)
    poster: indexed(address)
    digest: bytes32


event SettlementChallenged:
    epoch: indexed(uint256)
    challenger: indexed(address)


event SettlementResolved:
    epoch: indexed(uint256)
    poster_was_right: bool


event SettlementFinalized:
    epoch: indexed(uint256)
    carry: uint256
    carried_into: uint256


event Claimed:
    account: indexed(address)
    amount: uint256


token: public(immutable(IERC20))
arbiter: public(immutable(address))
task_family: public(immutable(bytes32))
spec_hash: public(immutable(bytes32))
max_providers: public(immutable(uint256))
min_provider_stake: public(immutable(uint256))
min_validator_stake: public(immutable(uint256))
immunity_epochs: public(immutable(uint256))
epoch_length: public(immutable(uint256))
commit_length: public(immutable(uint256))
settle_bond: public(immutable(uint256))
challenge_window: public(immutable(uint256))
genesis: public(immutable(uint256))

# slot => provider (empty address: free slot)
slot_provider: public(HashMap[uint256, address])
provider_count: public(uint256)
provider_stake: public(HashMap[address, uint256])
provider_joined: public(HashMap[address, uint256])  # epoch of registration
_provider_slot: HashMap[address, uint256]  # 1 + slot; 0 = not a provider
# slot => standing of its provider: moving average of its settled incentive (pruning order)
slot_rank: public(HashMap[uint256, uint256])
_rank_seeded: HashMap[uint256, bool]  # the slot's provider has had a settled epoch

validator_at: public(HashMap[uint256, address])
validator_count: public(uint256)
validator_stake: public(HashMap[address, uint256])
_validator_position: HashMap[address, uint256]  # 1 + index in validator_at; 0 = none
# every address that was ever a validator: a settlement may still pay one that left since
was_validator: public(HashMap[address, bool])

pool: public(HashMap[uint256, uint256])  # epoch => tokens to pay for it
commitments: public(HashMap[uint256, HashMap[address, bytes32]])
revealed: public(HashMap[uint256, HashMap[address, bool]])
settlements: public(HashMap[uint256, Settlement])
# epoch => provider => Merkle root of its answers to the epoch's pool (0: none)
answers_root: public(HashMap[uint256, HashMap[address, bytes32]])
# epoch => provider => root of the model that produced them (content address of its bytes)
answers_model: public(HashMap[uint256, HashMap[address, bytes32]])
# epoch => seed that draws the scored challenges (0: not revealed yet)
challenge_seed: public(HashMap[uint256, bytes32])
claimable: public(HashMap[address, uint256])


@deploy
def __init__(
    token_: IERC20,
    arbiter_: address,
    task_family_: bytes32,
    spec_hash_: bytes32,
    max_providers_: uint256,
    min_provider_stake_: uint256,
    min_validator_stake_: uint256,
    immunity_epochs_: uint256,
    epoch_length_: uint256,
    commit_length_: uint256,
    settle_bond_: uint256,
    challenge_window_: uint256,
):
    """
    @dev Opens an arena; epoch 0 starts now.
    @param token_ The stake and reward token.
    @param arbiter_ Resolves challenged settlements by recomputing the consensus.
    @param task_family_ Id of the task family (e.g. keccak256("embeddings")).
    @param spec_hash_ Hash of the evaluation spec every validator follows.
    @param max_providers_ Provider slots, 2.._MAX_PROVIDERS.
    @param min_provider_stake_ Minimum provider stake, in token base units.
    @param min_validator_stake_ Minimum validator stake, in token base units.
    @param immunity_epochs_ Epochs during which a new provider cannot be pruned.
    @param epoch_length_ Seconds per epoch.
    @param commit_length_ Seconds of the commit phase at the start of each epoch; the rest
           of the epoch is the reveal phase.
    @param settle_bond_ Bond to post or challenge a settlement.
    @param challenge_window_ Seconds a posted settlement can be challenged.
    """
    assert token_.address != empty(address), "arena: token is the zero address"
    assert arbiter_ != empty(address), "arena: arbiter is the zero address"
    assert max_providers_ >= 2 and max_providers_ <= _MAX_PROVIDERS, "arena: max providers out of 2..16"
    assert commit_length_ > 0 and commit_length_ < epoch_length_, "arena: commit phase must be inside the epoch"
    assert min_provider_stake_ > 0 and min_validator_stake_ > 0, "arena: zero minimum stake"
    token = token_
    arbiter = arbiter_
    task_family = task_family_
    spec_hash = spec_hash_
    max_providers = max_providers_
    min_provider_stake = min_provider_stake_
    min_validator_stake = min_validator_stake_
    immunity_epochs = immunity_epochs_
    epoch_length = epoch_length_
    commit_length = commit_length_
    settle_bond = settle_bond_
    challenge_window = challenge_window_
    genesis = block.timestamp


@internal
@view
def _epoch() -> uint256:
    """
    @dev The current epoch number.
    @return (now - genesis) // epoch_length.
    """
    return (block.timestamp - genesis) // epoch_length


@internal
@view
def _in_commit_phase() -> bool:
    """
    @dev Whether the current epoch is in its commit phase.
    @return True during the first `commit_length` seconds of the epoch.
    """
    return (block.timestamp - genesis) % epoch_length < commit_length


@internal
@view
def _answer_deadline(epoch: uint256) -> uint256:
    """
    @dev End of the answer window of `epoch`: half-way through its commit phase.
    @param epoch An epoch number.
    @return Timestamp from which answers are refused and the seed may be revealed.
    """
    return genesis + epoch * epoch_length + commit_length // 2


@external
@view
def answer_deadline(epoch: uint256) -> uint256:
    """
    @dev Providers commit answers before this timestamp; the seed is revealed from it on.
    @param epoch An epoch number.
    @return The timestamp.
    """
    return self._answer_deadline(epoch)


@external
@view
def current_epoch() -> uint256:
    """
    @dev The current epoch number.
    @return (now - genesis) // epoch_length.
    """
    return self._epoch()


@external
@view
def score_commitment(epoch: uint256, validator: address, scores: DynArray[uint256, _MAX_PROVIDERS], salt: bytes32) -> bytes32:
    """
    @dev The commitment a validator posts for its scores (computed off chain the same way).
    @param epoch The epoch scored.
    @param validator The validator's address.
    @param scores One score per slot (0 for empty slots).
    @param salt A secret random value.
    @return keccak256(abi_encode(epoch, validator, scores, salt)).
    """
    return keccak256(abi_encode(epoch, validator, scores, salt))


@external
@pure
def settlement_digest(
    providers: DynArray[address, _MAX_PROVIDERS],
    provider_rewards: DynArray[uint256, _MAX_PROVIDERS],
    ranks: DynArray[uint256, _MAX_PROVIDERS],
    validators: DynArray[address, _MAX_VALIDATORS],
    validator_rewards: DynArray[uint256, _MAX_VALIDATORS],
    carry: uint256,
) -> bytes32:
    """
    @dev The digest that identifies a posted settlement.
    @param providers Provider of each slot scored (empty address for an empty slot).
    @param provider_rewards Reward of each slot's provider.
    @param ranks Incentive of each slot (pruning order).
    @param validators Validators paid.
    @param validator_rewards Dividend of each validator.
    @param carry Remainder added to the pool of the epoch running at finalization.
    @return keccak256 of the abi encoding of all arguments.
    """
    return keccak256(abi_encode(providers, provider_rewards, ranks, validators, validator_rewards, carry))


@external
def register_provider(stake: uint256):
    """
    @dev Joins the arena with `stake` (approve first). Into a full arena, the lowest-ranked
         provider past its immunity is pruned (ties: the lowest slot) and takes back its stake
         with `claim`.
    @param stake Tokens to stake; at least `min_provider_stake`.
    """
    assert self._provider_slot[msg.sender] == 0, "arena: already a provider"
    assert self.validator_stake[msg.sender] == 0, "arena: validators cannot be providers"
    assert stake >= min_provider_stake, "arena: stake below the minimum provider stake"
    epoch: uint256 = self._epoch()
    slot: uint256 = max_value(uint256)
    if self.provider_count < max_providers:
        for i: uint256 in range(_MAX_PROVIDERS):
            if i >= max_providers:
                break
            if self.slot_provider[i] == empty(address):
                slot = i
                break
    else:
        lowest: uint256 = max_value(uint256)
        for i: uint256 in range(_MAX_PROVIDERS):
            if i >= max_providers:
                break
            occupant: address = self.slot_provider[i]
            if epoch < self.provider_joined[occupant] + immunity_epochs:
                continue
            if slot == max_value(uint256) or self.slot_rank[i] < lowest:
                slot = i
                lowest = self.slot_rank[i]
        assert slot != max_value(uint256), "arena: full and every provider is immune; retry later"
        victim: address = self.slot_provider[slot]
        self.claimable[victim] += self.provider_stake[victim]
        self.provider_stake[victim] = 0
        self._provider_slot[victim] = 0
        self.provider_count -= 1
        log ProviderPruned(provider=victim, slot=slot, newcomer=msg.sender, epoch=epoch)
    self.slot_provider[slot] = msg.sender
    self._provider_slot[msg.sender] = slot + 1
    self.provider_stake[msg.sender] = stake
    self.provider_joined[msg.sender] = epoch
    self.slot_rank[slot] = 0
    self._rank_seeded[slot] = False
    self.provider_count += 1
    log ProviderRegistered(provider=msg.sender, slot=slot, stake=stake, epoch=epoch)
    assert extcall token.transferFrom(msg.sender, self, stake), "arena: transfer failed"


@external
def leave():
    """
    @dev A provider leaves; its slot is freed and its stake becomes claimable.
    """
    position: uint256 = self._provider_slot[msg.sender]
    assert position != 0, "arena: not a provider"
    self.slot_provider[position - 1] = empty(address)
    self._provider_slot[msg.sender] = 0
    self.claimable[msg.sender] += self.provider_stake[msg.sender]
    self.provider_stake[msg.sender] = 0
    self.provider_count -= 1
    log ProviderLeft(provider=msg.sender, slot=position - 1, epoch=self._epoch())


@external
def register_validator(stake: uint256):
    """
    @dev Joins as a validator with `stake` (approve first).
    @param stake Tokens to stake; at least `min_validator_stake`.
    """
    assert self._validator_position[msg.sender] == 0, "arena: already a validator"
    assert self._provider_slot[msg.sender] == 0, "arena: providers cannot be validators"
    assert stake >= min_validator_stake, "arena: stake below the minimum validator stake"
    assert self.validator_count < _MAX_VALIDATORS, "arena: validator set is full"
    self.validator_at[self.validator_count] = msg.sender
    self.validator_count += 1
    self._validator_position[msg.sender] = self.validator_count
    self.validator_stake[msg.sender] = stake
    self.was_validator[msg.sender] = True
    log ValidatorRegistered(validator=msg.sender, stake=stake, epoch=self._epoch())
    assert extcall token.transferFrom(msg.sender, self, stake), "arena: transfer failed"


@external
def leave_validator():
    """
    @dev A validator leaves (swap-and-pop, O(1)); its stake becomes claimable. Its reveals
         of the current epoch still count; settlements may still pay it.
    """
    position: uint256 = self._validator_position[msg.sender]
    assert position != 0, "arena: not a validator"
    last: address = self.validator_at[self.validator_count - 1]
    self.validator_at[position - 1] = last
    self._validator_position[last] = position
    self.validator_at[self.validator_count - 1] = empty(address)
    self.validator_count -= 1
    self._validator_position[msg.sender] = 0
    stake: uint256 = self.validator_stake[msg.sender]
    self.validator_stake[msg.sender] = 0
    self.claimable[msg.sender] += stake
    log ValidatorLeft(validator=msg.sender, stake=stake, epoch=self._epoch())


@external
def fund(epoch: uint256, amount: uint256):
    """
    @dev Adds `amount` to the reward pool of `epoch` (approve first); anyone may fund.
    @param epoch The current or a future epoch.
    @param amount Tokens to add; more than zero.
    """
    assert amount > 0, "arena: zero amount"
    assert epoch >= self._epoch(), "arena: epoch already over"
    self.pool[epoch] += amount
    log Funded(epoch=epoch, funder=msg.sender, amount=amount)
    assert extcall token.transferFrom(msg.sender, self, amount), "arena: transfer failed"


@external
def commit_answers(epoch: uint256, model_root: bytes32, answers_root: bytes32):
    """
    @dev A provider commits the Merkle root of its answers to the current epoch's pool (the
         challenges are drawn from it later by `challenge_seed`), naming the model that made them.
    @param epoch The current epoch.
    @param model_root Content address of the model that produced the answers.
    @param answers_root Merkle root of the answer leaves, in pool order.
    """
    slot: uint256 = self._provider_slot[msg.sender]
    assert slot != 0, "arena: not a provider"
    assert epoch == self._epoch(), "arena: not the current epoch"
    assert block.timestamp < self._answer_deadline(epoch), "arena: answer window is over"
    assert answers_root != empty(bytes32), "arena: empty answers root"
    assert self.answers_root[epoch][msg.sender] == empty(bytes32), "arena: answers already committed"
    self.answers_root[epoch][msg.sender] = answers_root
    self.answers_model[epoch][msg.sender] = model_root
    log AnswersCommitted(epoch=epoch, provider=msg.sender, slot=slot - 1, model_root=model_root, answers_root=answers_root)


@external
def reveal_seed(epoch: uint256) -> bytes32:
    """
    @dev Fixes the challenge seed of `epoch` once its answer window is over (anyone may call;
         the first call decides): keccak256 of this arena, the epoch, the previous block's
         hash and this block's prevrandao, none of which existed while answers were open.
    @param epoch An epoch whose answer window is over.
    @return The seed.
    """
    assert epoch <= self._epoch(), "arena: epoch has not started"
    assert block.timestamp >= self._answer_deadline(epoch), "arena: answer window still open"
    assert self.challenge_seed[epoch] == empty(bytes32), "arena: seed already revealed"
    seed: bytes32 = keccak256(abi_encode(self, epoch, blockhash(block.number - 1), block.prevrandao))
    self.challenge_seed[epoch] = seed
    log SeedRevealed(epoch=epoch, seed=seed)
    return seed


@external
def commit_scores(epoch: uint256, commitment: bytes32):
    """
    @dev Commits a validator's scores for the current epoch during its commit phase.
    @param epoch The current epoch (named so that a late transaction cannot land in the next).
    @param commitment `score_commitment(epoch, validator, scores, salt)`.
    """
    assert self.validator_stake[msg.sender] > 0, "arena: not a validator"
    assert epoch == self._epoch(), "arena: not the current epoch"
    assert self._in_commit_phase(), "arena: commit phase is over"
    assert commitment != empty(bytes32), "arena: empty commitment"
    assert self.commitments[epoch][msg.sender] == empty(bytes32), "arena: already committed"
    self.commitments[epoch][msg.sender] = commitment
    log ScoresCommitted(epoch=epoch, validator=msg.sender, commitment=commitment)


@external
def reveal_scores(epoch: uint256, scores: DynArray[uint256, _MAX_PROVIDERS], salt: bytes32):
    """
    @dev Reveals committed scores during the reveal phase of the same epoch.
    @param epoch The current epoch.
    @param scores One score per slot, `max_providers` long; 0 for empty slots; not all 0.
    @param salt The salt of the commitment.
    """
    assert epoch == self._epoch(), "arena: not the current epoch"
    assert not self._in_commit_phase(), "arena: reveal phase has not started"
    committed: bytes32 = self.commitments[epoch][msg.sender]
    assert committed != empty(bytes32), "arena: nothing committed"
    assert not self.revealed[epoch][msg.sender], "arena: already revealed"
    assert len(scores) == max_providers, "arena: score vector length must equal max_providers"
    assert keccak256(abi_encode(epoch, msg.sender, scores, salt)) == committed, "arena: reveal does not match the commitment"
    total: uint256 = 0
    for i: uint256 in range(_MAX_PROVIDERS):
        if i >= max_providers:
            break
        if self.slot_provider[i] == empty(address):
            assert scores[i] == 0, "arena: score for an empty slot"
        total += scores[i]
    assert total > 0, "arena: all scores are zero"
    self.revealed[epoch][msg.sender] = True
    log ScoresRevealed(epoch=epoch, validator=msg.sender, scores=scores)


@external
def post_settlement(
    epoch: uint256,
    providers: DynArray[address, _MAX_PROVIDERS],
    provider_rewards: DynArray[uint256, _MAX_PROVIDERS],
    ranks: DynArray[uint256, _MAX_PROVIDERS],
    validators: DynArray[address, _MAX_VALIDATORS],
    validator_rewards: DynArray[uint256, _MAX_VALIDATORS],
    carry: uint256,
):
    """
    @dev Posts the consensus payouts of a past epoch with `settle_bond` (approve first).
         Only conservation and shapes are checked here; correctness is what the challenge
         window is for.
    @param epoch A finished epoch without a live settlement.
    @param providers Provider of each slot (empty address for an empty slot), max_providers long.
    @param provider_rewards Reward per slot.
    @param ranks Incentive per slot, used to order pruning.
    @param validators Validators paid (each must be or have been a validator).
    @param validator_rewards Dividend per validator.
    @param carry Remainder added to the pool of the epoch running at finalization.
    """
    assert epoch < self._epoch(), "arena: epoch not over yet"
    assert self.settlements[epoch].status == STATUS_NONE, "arena: epoch already has a settlement"
    assert len(providers) == max_providers and len(provider_rewards) == max_providers and len(ranks) == max_providers, "arena: provider lists must be max_providers long"
    assert len(validators) == len(validator_rewards), "arena: validators and rewards differ in length"
    total: uint256 = carry
    for i: uint256 in range(_MAX_PROVIDERS):
        if i >= max_providers:
            break
        if providers[i] == empty(address):
            assert provider_rewards[i] == 0, "arena: reward for an empty slot"
        total += provider_rewards[i]
    for i: uint256 in range(_MAX_VALIDATORS):
        if i >= len(validators):
            break
        assert self.was_validator[validators[i]], "arena: reward for a non-validator"
        total += validator_rewards[i]
    assert total == self.pool[epoch], "arena: payouts plus carry must equal the epoch's pool"
    digest: bytes32 = keccak256(abi_encode(providers, provider_rewards, ranks, validators, validator_rewards, carry))
    self.settlements[epoch] = Settlement(
        status=STATUS_POSTED, poster=msg.sender, challenger=empty(address), digest=digest, posted_at=block.timestamp
    )
    log SettlementPosted(epoch=epoch, poster=msg.sender, digest=digest)
    assert extcall token.transferFrom(msg.sender, self, settle_bond), "arena: transfer failed"


@external
def challenge(epoch: uint256):
    """
    @dev Disputes a posted settlement within the window, with `settle_bond` (approve first).
    @param epoch The epoch whose settlement is wrong.
    """
    s: Settlement = self.settlements[epoch]
    assert s.status == STATUS_POSTED, "arena: no posted settlement to challenge"
    assert block.timestamp < s.posted_at + challenge_window, "arena: challenge window is over"
    assert msg.sender != s.poster, "arena: poster cannot challenge itself"
    self.settlements[epoch].status = STATUS_CHALLENGED
    self.settlements[epoch].challenger = msg.sender
    log SettlementChallenged(epoch=epoch, challenger=msg.sender)
    assert extcall token.transferFrom(msg.sender, self, settle_bond), "arena: transfer failed"


@external
def resolve(epoch: uint256, poster_was_right: bool):
    """
    @dev The arbiter's verdict on a challenged settlement, after recomputing the consensus.
         The winner is credited both bonds. A right settlement becomes final-able at once; a
         wrong one is erased so that a correct one can be posted.
    @param epoch The challenged epoch.
    @param poster_was_right True if the posted payouts equal the recomputed ones.
    """
    assert msg.sender == arbiter, "arena: caller is not the arbiter"
    s: Settlement = self.settlements[epoch]
    assert s.status == STATUS_CHALLENGED, "arena: settlement is not challenged"
    if poster_was_right:
        self.claimable[s.poster] += 2 * settle_bond
        self.settlements[epoch].status = STATUS_POSTED
        self.settlements[epoch].posted_at = 0  # window over: finalize at once
        self.settlements[epoch].poster = empty(address)  # bond already returned
    else:
        self.claimable[s.challenger] += 2 * settle_bond
        self.settlements[epoch] = empty(Settlement)
    log SettlementResolved(epoch=epoch, poster_was_right=poster_was_right)


@external
def finalize(
    epoch: uint256,
    providers: DynArray[address, _MAX_PROVIDERS],
    provider_rewards: DynArray[uint256, _MAX_PROVIDERS],
    ranks: DynArray[uint256, _MAX_PROVIDERS],
    validators: DynArray[address, _MAX_VALIDATORS],
    validator_rewards: DynArray[uint256, _MAX_VALIDATORS],
    carry: uint256,
):
    """
    @dev Pays an unchallenged settlement after its window (anyone may call, with the posted
         lists): credits every payout, returns the poster's bond, moves the carry into the
         pool of the epoch running now and updates each slot's standing (the pruning order) with its rank.
    @param epoch The settled epoch.
    @param providers As posted.
    @param provider_rewards As posted.
    @param ranks As posted.
    @param validators As posted.
    @param validator_rewards As posted.
    @param carry As posted.
    """
    s: Settlement = self.settlements[epoch]
    assert s.status == STATUS_POSTED, "arena: no settlement to finalize"
    assert block.timestamp >= s.posted_at + challenge_window, "arena: challenge window still open"
    assert keccak256(abi_encode(providers, provider_rewards, ranks, validators, validator_rewards, carry)) == s.digest, "arena: lists differ from the posted settlement"
    # The carry joins the epoch running now: never one already posted (posting needs a
    # finished epoch) or finished (funding too), so it can never be stranded.
    carried_into: uint256 = self._epoch()
    self.settlements[epoch].status = STATUS_FINAL
    self.pool[epoch] = 0
    self.pool[carried_into] += carry
    if s.poster != empty(address):
        self.claimable[s.poster] += settle_bond
    for i: uint256 in range(_MAX_PROVIDERS):
        if i >= max_providers:
            break
        if providers[i] != empty(address):
            self.claimable[providers[i]] += provider_rewards[i]
        if providers[i] != empty(address) and self.slot_provider[i] == providers[i]:
            if self._rank_seeded[i]:
                self.slot_rank[i] = (_STANDING_NEW * ranks[i] + (_STANDING_DEN - _STANDING_NEW) * self.slot_rank[i]) // _STANDING_DEN
            else:
                self.slot_rank[i] = ranks[i]
                self._rank_seeded[i] = True
    for i: uint256 in range(_MAX_VALIDATORS):
        if i >= len(validators):
            break
        self.claimable[validators[i]] += validator_rewards[i]
    log SettlementFinalized(epoch=epoch, carry=carry, carried_into=carried_into)


@external
def claim():
    """
    @dev Withdraws everything credited to the caller (rewards, bonds, pruned stake).
    """
    amount: uint256 = self.claimable[msg.sender]
    assert amount > 0, "arena: nothing to claim"
    self.claimable[msg.sender] = 0
    log Claimed(account=msg.sender, amount=amount)
    assert extcall token.transfer(msg.sender, amount), "arena: transfer failed"
