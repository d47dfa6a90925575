"""The curated sound classes: which packaged files are what, how to say it, and which files are one recording.

Each class lists its files as regular expressions over "CODE:path" (CODE a `sources.PACKAGES` code, path relative
to that package's sound folder). Classes were chosen from file names, folders and the packages' metadata
(SURVEY.md); fantasy, speech, music and UI sounds are left out.

Recording ids: files that are cuts of one original take must share one id, or a test scene could contain a take
heard in training. `recording_id` strips a trailing variant number ("cow_ack3" -> "cow_ack", "Thunder2" ->
"Thunder"), so numbered variants always count as one recording; `SAME_TAKE` joins families the OpenClonk
authors.txt names as cut from one freesound file; `build.py` also joins near-identical audio.
"""

import dataclasses
import re

__all__ = ["SoundClass", "CLASSES", "SAME_TAKE", "EXCLUDED", "recording_id", "MIN_RECORDINGS"]

MIN_RECORDINGS = 3  # a class needs a recording for each of train, val and test


@dataclasses.dataclass(frozen=True)
class SoundClass:
    """`clauses`: full sentences ("a cow moos"); `nouns`: noun phrases ("a cow mooing"), several variants each.
    `texture`: a sound that goes on (rain, wind, engines), looped to any length and usable as a background."""

    name: str
    clauses: tuple
    nouns: tuple
    files: tuple
    texture: bool = False


def _class(name, clauses, nouns, *files, texture=False):
    return SoundClass(name, tuple(clauses), tuple(nouns), tuple(files), texture)


_MG_SOUNDS = "MG:techs/megapack/commondata/sounds/"
_MG_UNITS = "MG:techs/megapack/factions/[a-z]+/units/"
_MG_TILES = "MG:tilesets/[a-z_0-9]+/sounds/"
_TP_ANIMALS = "TP:animals/"

CLASSES = (
    # animals
    _class("cow", ["a cow moos", "a cow lows", "cattle moo"], ["a cow mooing", "the mooing of a cow", "cattle lowing"],
           _MG_SOUNDS + r"cow_.*", _MG_UNITS + r"bull/sounds/bull_.*", _MG_TILES + r"mudchute_cow.*",
           _TP_ANIMALS + r"mammals/bovines/(cow|cow_white|bull|bison)\.ogg"),
    _class("pig", ["a pig oinks", "a pig grunts", "a pig squeals"], ["a pig oinking", "a pig grunting", "pig grunts"],
           _MG_SOUNDS + r"pig_.*", _MG_UNITS + r"wild_sow/sounds/pig_.*", _TP_ANIMALS + r"mammals/pig(_golden2?)?\.ogg"),
    _class("chicken", ["a chicken clucks", "a hen clucks", "a rooster crows"],
           ["a chicken clucking", "a hen clucking", "a rooster crowing"],
           _MG_UNITS + r"chicken/sounds/chicken_.*", _MG_TILES + r"(chicken|rooster)\.(wav|ogg)",
           _TP_ANIMALS + r"birds/(rooster|hen)\.ogg"),
    _class("sheep", ["a sheep bleats", "a goat bleats", "sheep baa"], ["a sheep bleating", "a goat bleating",
                                                                       "the bleating of a sheep"],
           _MG_UNITS + r"sheep/sounds/sheep.*", _TP_ANIMALS + r"mammals/bovines/(sheep|sheep_lamb|goat|ram|"
                                                              r"mountaingoat)\.ogg"),
    _class("bird", ["a bird sings", "birds chirp", "a bird calls"], ["a bird singing", "birds chirping",
                                                                     "a bird calling"],
           _TP_ANIMALS + r"birds/(crow|cuckoo|blackbird|lark|owl|seagull|tucan|quetzal|heron_greatblue_flying)\.ogg",
           r"WN:ambient/(birds[0-9]|morning)\.ogg", _MG_TILES + r"(owl|hawk)\.(wav|ogg)",
           r"OC:Environment\.ocg/BirdsLoop\.ogg"),
    _class("dog", ["a dog growls", "a wolf snarls", "a dog barks"], ["a dog growling", "a wolf snarling",
                                                                     "a dog barking"],
           r"WN:wolf-.*\.ogg", _MG_TILES + r"wolf\.wav", _TP_ANIMALS + r"mammals/dogs/(dog|fox)\.ogg"),
    _class("insect", ["a bee buzzes", "insects buzz", "a fly buzzes"], ["a bee buzzing", "insects buzzing",
                                                                        "the buzzing of an insect"],
           _MG_UNITS + r"beehive/sounds/bee.*", _TP_ANIMALS + r"insects/(bee|hornet)\.ogg",
           r"OC:Animals\.ocg/MosquitoBuzz\.ogg"),
    _class("horse", ["a horse neighs", "a horse whinnies", "a donkey brays"],
           ["a horse neighing", "a horse whinnying", "a braying donkey"],
           r"WN:horse-(hit-[0-9]|die)\.ogg", _TP_ANIMALS + r"mammals/equines/(horse|donkey|zebra)\.ogg"),
    _class("hooves", ["hooves clop", "a horse trots", "a horse gallops"],
           ["hooves clopping", "a horse trotting", "the clatter of hooves"],
           _MG_SOUNDS + r"horseman_walk.*", r"WN:horse(-elf)?-canter\.wav"),
    _class("duck", ["a duck quacks", "a goose honks", "ducks quack"], ["a duck quacking", "a goose honking",
                                                                       "quacking ducks"],
           _TP_ANIMALS + r"birds/(duck|drake|gander)\.ogg"),
    _class("elephant", ["an elephant trumpets", "an elephant calls"], ["an elephant trumpeting",
                                                                       "an elephant calling"],
           _MG_UNITS + r"elephant/sounds/ele([0-9]|attack[0-9]*)\.wav", _TP_ANIMALS + r"mammals/elephant\.ogg"),
    # weather and nature
    _class("thunder", ["thunder rumbles", "thunder cracks", "thunder roars"],
           ["thunder rumbling", "a clap of thunder", "rumbling thunder"],
           r"OC:Environment\.ocg/Lightning\.ocg/Thunder.*", r"ST:thunder\.wav", r"TP:naturalforces/lightningbolt\.ogg"),
    _class("rain", ["rain falls", "rain pours down", "it rains steadily"], ["rain falling", "pouring rain",
                                                                            "steady rain"],
           _MG_TILES + r"rain\.(wav|ogg)", r"ST:rain\.wav", r"OC:Liquids\.ocg/StereoRain\.ogg", texture=True),
    _class("crickets", ["crickets chirp", "insects chirp at night", "crickets sing"],
           ["crickets chirping", "insects chirping at night", "the chirping of crickets"],
           _MG_TILES + r"(night|nightime)\.ogg", r"WN:ambient/night\.ogg", texture=True),
    _class("wind", ["wind blows", "the wind howls", "wind gusts"], ["wind blowing", "a howling wind", "gusts of wind"],
           _MG_TILES + r"wind\.ogg", r"OC:Environment\.ocg/WindLoop\.ogg", r"OC:Objects\.ocg/Windbag\.ocg/Gust\.ogg",
           texture=True),
    # water and fire
    _class("splash", ["water splashes", "something splashes into water", "water sloshes"],
           ["water splashing", "a splash of water", "sloshing water"],
           r"MG:data/core/water_sounds/water.*", r"OC:Liquids\.ocg/Splash.*", r"ST:splash\.(wav|ogg)"),
    _class("stream", ["water flows", "a stream trickles", "water runs"], ["water flowing", "a trickling stream",
                                                                          "running water"],
           r"LC:(Water|ParklandLake)[0-9]\.wav", r"ST:waterfall\.wav", r"OC:Environment\.ocg/Waterfall\.ogg",
           texture=True),
    _class("fire", ["a fire crackles", "flames crackle", "a fire burns"], ["a fire crackling", "crackling flames",
                                                                           "a burning fire"],
           r"LC:Fire[0-9]\.wav", r"ST:(fire\.ogg|flame\.wav)", r"WN:(fire\.wav|ambient/campfire\.ogg)",
           r"OC:Fire\.ocg/Fire\.ogg", texture=True),
    _class("explosion", ["an explosion booms", "something explodes", "a blast goes off"],
           ["an explosion", "a loud blast", "a booming explosion"],
           r"OC:Fire\.ocg/Blast([0-9]|[0-9]alt|Metal)\.wav", r"LC:RocketExplosion[0-9]\.wav", r"ST:explosion\.wav",
           r"WN:explosion\.ogg"),
    _class("fireworks", ["fireworks pop", "firecrackers go off", "fireworks crackle"],
           ["fireworks popping", "firecrackers bursting", "crackling fireworks"],
           r"ST:(fireworks\.wav|firecracker\.ogg)", r"OC:Fire\.ocg/(BlastFirework|Cracker)\.ogg",
           r"TP:seasonal/newyears/fireworks\.ogg"),
    _class("gunshot", ["a gun fires", "a gunshot rings out", "a rifle fires"], ["a gunshot", "a gun firing",
                                                                                "a rifle shot"],
           r"OC:Objects\.ocg/Weapons\.ocg/Blunderbuss\.ocg/(GunShoot|BulletShot)[0-9]\.ogg", r"WN:gunshot\.wav"),
    # people
    _class("laughter", ["a person laughs", "someone laughs", "a man laughs"], ["a person laughing",
                                                                               "laughter", "a man laughing"],
           r"OC:Clonk\.ocg/Skin\.ocg/[A-Za-z]+\.ocg/Laughter[0-9]\.wav", r"WN:dwarf-laugh\.wav"),
    _class("pain", ["a person cries out in pain", "a man groans", "someone yells"],
           ["a person crying out in pain", "a man groaning", "someone yelling"],
           r"OC:Clonk\.ocg/Skin\.ocg/[A-Za-z]+\.ocg/(Hurt|Die|Scream)[0-9]\.(wav|ogg)",
           r"WN:human-(old-|female-)?(hit|die)-[0-9]\.ogg", r"FD:Influencer_Scream_Sound_[0-9]\.ogg"),
    _class("footsteps", ["footsteps approach", "a person walks", "someone steps"],
           ["footsteps", "a person walking", "footsteps on the ground"],
           r"OC:Clonk\.ocg/Movement\.ocg/Step(Hard|Soft)[0-9]\.ogg", r"FD:tux_footstep\.ogg"),
    _class("crowd", ["a crowd murmurs", "people chatter", "a crowd talks"], ["a murmuring crowd", "people chattering",
                                                                            "the chatter of a crowd"],
           r"LC:Market(Low|Med|Full)[0-9]\.wav", r"LC:SportsCroud[0-9]\.wav", texture=True),
    # tools and household
    _class("door", ["a door creaks", "a door opens", "a door closes"], ["a door creaking", "a door opening",
                                                                        "a creaking door"],
           r"OC:Structures\.ocg/(Door(Open|Close)[0-9]|DoorUnlock)\.wav", r"OC:Structures\.ocg/HingeCreak[0-9]\.ogg",
           r"ST:door\.wav", r"WN:open-chest\.wav"),
    _class("glass", ["glass shatters", "glass breaks", "a window smashes"], ["glass shattering", "breaking glass",
                                                                            "a window smashing"],
           r"OC:Hits\.ocg/Materials\.ocg/Glass\.ocg/Glass(Break|Shatter)\.ogg", r"FD:Glass_Break\.ogg",
           r"ST:icecrash\.ogg"),
    _class("hammer", ["a hammer strikes metal", "metal is hammered", "a hammer hits an anvil"],
           ["a hammer striking metal", "hammering on metal", "a hammer hitting an anvil"],
           _MG_SOUNDS + r"anvil.*", r"LC:Blacksmith[0-9]\.wav", r"TP:household/tools/(hammer|mallet_metal)\.ogg"),
    _class("chopping", ["an axe chops wood", "wood is chopped", "someone chops wood"],
           ["an axe chopping wood", "wood being chopped", "the chopping of wood"],
           r"OC:Environment\.ocg/Tree\.ocg/Chop[0-9]\.wav", _MG_SOUNDS + r"worker_harvest_wood.*",
           r"WN:(axe\.ogg|hatchet\.wav)"),
    _class("pickaxe", ["a pickaxe strikes rock", "someone digs with a pickaxe", "a pick hits stone"],
           ["a pickaxe striking rock", "digging with a pickaxe", "a pick hitting stone"],
           r"OC:Objects\.ocg/Pickaxe\.ocg/Clang(Hard)?[0-9]\.wav", _MG_SOUNDS + r"worker_mine.*",
           _MG_UNITS + r"technician/sounds/technician_mine.*"),
    _class("sawing", ["a saw cuts wood", "someone saws wood", "wood is sawn"], ["a saw cutting wood", "sawing",
                                                                               "wood being sawn"],
           r"TP:household/tools/saw\.ogg", r"ST:saw\.wav", r"OC:Structures\.ocg/SawmillRipcut\.ogg"),
    _class("metal", ["metal clangs", "metal clanks", "something metallic is struck"],
           ["metal clanging", "a metallic clank", "a metal object being struck"],
           r"OC:Hits\.ocg/Materials\.ocg/Metal\.ocg/(Dull|Light)MetalHit[0-9]\.ogg",
           r"OC:Objects\.ocg/Weapons\.ocg/Shield\.ocg/MetalHit[0-9]\.ogg"),
    _class("knock", ["wood knocks", "something knocks on wood", "a wooden object is struck"],
           ["wood knocking", "a knock on wood", "a wooden thud"],
           r"OC:Hits\.ocg/Materials\.ocg/Wood\.ocg/(DullWoodHit|WoodHit)[0-9]\.ogg",
           r"OC:Objects\.ocg/Weapons\.ocg/Shield\.ocg/WoodHit[0-9]\.ogg", r"ST:wood\.wav"),
    _class("swords", ["swords clash", "blades clang together", "a sword strikes"],
           ["swords clashing", "clanging blades", "a sword striking"],
           _MG_SOUNDS + r"swordman_attack.*", r"OC:Objects\.ocg/Weapons\.ocg/WeaponHit[0-9]\.ogg",
           r"WN:sword-1\.ogg", r"FD:swing_then_hit_[0-9]\.ogg"),
    _class("whoosh", ["something whooshes through the air", "a stick swishes", "an object swooshes past"],
           ["a whoosh", "a stick swishing", "something swooshing through the air"],
           r"OC:Objects\.ocg/Weapons\.ocg/WeaponSwing[0-9]\.ogg", r"OC:Objects\.ocg/Weapons\.ocg/Javelin\.ocg/"
                                                                   r"Throw[0-9]\.ogg",
           r"WN:(throw-[0-9]\.wav|dagger-swish\.wav)", r"FD:swing_then_nohit_[0-9]\.ogg"),
    _class("arrow", ["an arrow is shot", "a bow twangs", "an arrow flies"], ["an arrow being shot", "a twanging bow",
                                                                            "an arrow flying"],
           r"OC:Objects\.ocg/(Arrow\.ocg|Weapons\.ocg/Bow\.ocg)/Shoot[0-9]\.ogg", r"WN:(bow|crossbow)\.ogg",
           _MG_SOUNDS + r"arrow_hit.*"),
    _class("bell", ["a bell rings", "a bell chimes", "a small bell dings"], ["a bell ringing", "a chiming bell",
                                                                            "the ding of a bell"],
           r"ST:(savebell2|savebell_low)\.wav", r"OC:UI\.ocg/Ding\.ogg"),
    _class("coins", ["coins jingle", "coins clink", "money jingles"], ["coins jingling", "clinking coins",
                                                                       "the jingle of coins"],
           r"OC:UI\.ocg/(Cash|UnCash[0-9])\.(ogg|wav)", r"WN:gold\.ogg"),
    # machines
    _class("machine", ["a machine hums", "an engine runs", "machinery whirs"], ["a machine humming",
                                                                               "an engine running", "whirring machinery"],
           r"OC:Structures\.ocg/(SteamEngine|Pumpjack|FanLoop|Elevator\.ocg/(Drilling|Moving)|Furnace\.ocg/Loop)"
           r"\.ogg", r"LC:Industry(High|Light)[0-9]\.wav", texture=True),
)

# Families cut from one source recording (OpenClonk's Sound.ocg/authors.txt): one recording id for all of them.
SAME_TAKE = (("OC:Clonk.ocg/Movement.ocg/StepHard", "OC:Clonk.ocg/Movement.ocg/StepSoft"),)

# Files a class rule matches but which are not what the class says (checked by ear in the survey).
EXCLUDED = (
    r"OC:Liquids\.ocg/Swim[0-9]\.ogg",  # made from Splash1-3 (authors.txt)
    r"TP:.*_desc.*",  # spoken descriptions of the stamps
)

_VARIANT = re.compile(r"[-_ ]?[0-9]+$")


def recording_id(path):
    """The recording a catalogue path ("CODE:dir/name.ext") was cut from, by name: its stem without a trailing
    variant number, joined by SAME_TAKE."""
    stem = path.rsplit(".", 1)[0]
    directory, _, name = stem.rpartition("/")
    base = _VARIANT.sub("", name) or name
    recording = f"{directory}/{base}" if directory else base
    for family in SAME_TAKE:
        if recording in family:
            return family[0]
    return recording
